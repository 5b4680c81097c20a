from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise.fields.base import OnDelete
from uuid import uuid4
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0011_access_log_grant_at')]

    initial = False

    operations = [
        ops.CreateModel(
            name='StatisticsConsent',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('member', fields.ForeignKeyField('models.Member', source_field='member_id', db_constraint=True, to_field='id', related_name='statistics_consents', on_delete=OnDelete.CASCADE)),
                ('shared_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'governance_statistics_consent', 'app': 'models', 'unique_together': (('member_id',),), 'pk_attr': 'id', 'table_description': "A member's choice to let proposed scorers run on their data, in the sandbox, only to"},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Proposal',
            name='statistics',
            field=fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads),
        ),
    ]
