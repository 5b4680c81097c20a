from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise.fields.base import OnDelete
from uuid import uuid4
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0002_member_indexes')]

    initial = False

    operations = [
        ops.CreateModel(
            name='AppTerms',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('app', fields.ForeignKeyField('models.App', source_field='app_id', db_constraint=True, to_field='id', related_name='terms', on_delete=OnDelete.CASCADE)),
                ('version', fields.IntField()),
                ('purpose', fields.TextField(null=True, unique=False)),
                ('score_purposes', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('retention_days', fields.IntField(null=True)),
                ('policy_uri', fields.CharField(null=True, max_length=500)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'app_terms', 'app': 'models', 'unique_together': (('app_id', 'version'),), 'pk_attr': 'id', 'table_description': 'What an app says it does with what it reads: one row per version, never changed.'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='App',
            name='terms_version',
            field=fields.IntField(default=0),
        ),
        ops.AddField(
            model_name='Grant',
            name='terms_version',
            field=fields.IntField(default=0),
        ),
        ops.AddField(
            model_name='GrantEvent',
            name='terms_version',
            field=fields.IntField(null=True),
        ),
    ]
