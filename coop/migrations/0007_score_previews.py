from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from uuid import uuid4
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0006_score_inputs_and_version_consent')]

    initial = False

    operations = [
        ops.CreateModel(
            name='ScorePreview',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('member', fields.ForeignKeyField('models.Member', source_field='member_id', db_constraint=True, to_field='id', related_name='score_previews', on_delete=OnDelete.CASCADE)),
                ('scorer', fields.CharField(max_length=40)),
                ('scorer_version', fields.CharField(max_length=64)),
                ('value', fields.FloatField()),
                ('computed_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('change_sealed', fields.BinaryField(null=True)),
            ],
            options={'table': 'score_preview', 'app': 'models', 'unique_together': (('member_id', 'scorer'),), 'pk_attr': 'id', 'table_description': 'What a new scorer version would give a member, before they accept it. Never read by'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='ScorerConsent',
            name='kept_version',
            field=fields.CharField(default='', max_length=64),
        ),
    ]
