from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from uuid import uuid4
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0004_receipt_keys')]

    initial = False

    operations = [
        ops.CreateModel(
            name='ScoreNotice',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('grant', fields.ForeignKeyField('models.Grant', source_field='grant_id', db_constraint=True, to_field='id', related_name='notices', on_delete=OnDelete.CASCADE)),
                ('app_id', fields.UUIDField()),
                ('app_name', fields.CharField(max_length=100)),
                ('scorer', fields.CharField(max_length=64)),
                ('changed_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('status', fields.CharField(default='pending', max_length=16)),
                ('attempts', fields.IntField(default=0)),
                ('last_status', fields.IntField(null=True)),
                ('last_error', fields.CharField(default='', max_length=64)),
                ('next_attempt_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('delivered_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('body', fields.BinaryField(null=True)),
            ],
            options={'table': 'score_notice', 'app': 'models', 'indexes': [Index(fields=['status', 'next_attempt_at']), Index(fields=['grant_id'])], 'pk_attr': 'id', 'table_description': 'A signed "score changed" notice to an app holding a live grant, and how its delivery'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='App',
            name='score_notices',
            field=fields.BooleanField(default=False),
        ),
    ]
