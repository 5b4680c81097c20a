from tortoise import migrations
from tortoise.migrations import operations as ops
from uuid import uuid4
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0007_score_previews')]

    initial = False

    operations = [
        ops.CreateModel(
            name='ScorerDrift',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('scorer', fields.CharField(max_length=40)),
                ('scorer_version', fields.CharField(max_length=64)),
                ('seen', fields.IntField(default=0)),
                ('last_seen_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'scorer_drift', 'app': 'models', 'unique_together': (('scorer', 'scorer_version'),), 'pk_attr': 'id', 'table_description': 'Same inputs, same version, another value: how often a scorer version did it (no member'},
            bases=['Model'],
        ),
    ]
