from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0005_score_notices')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Score',
            name='inputs_sealed',
            field=fields.BinaryField(null=True),
        ),
        ops.AddField(
            model_name='ScorerConsent',
            name='accepted_reads',
            field=fields.CharField(default='', max_length=200),
        ),
        ops.AddField(
            model_name='ScorerConsent',
            name='accepted_text',
            field=fields.BooleanField(default=False),
        ),
        ops.AddField(
            model_name='ScorerConsent',
            name='accepted_version',
            field=fields.CharField(default='', max_length=64),
        ),
        ops.AddField(
            model_name='ScorerConsent',
            name='stale_reason',
            field=fields.CharField(default='', max_length=300),
        ),
        ops.AlterModelOptions(
            name='ScorerConsentEvent',
            options={'table': 'scorer_consent_event', 'app': 'models', 'indexes': [Index(fields=['member_id', 'scorer'])], 'pk_attr': 'id', 'table_description': 'One enable, disable, new-version question or acceptance, with when and which scorer'},
        ),
        ops.AddField(
            model_name='ScorerConsentEvent',
            name='note',
            field=fields.CharField(default='', max_length=300),
        ),
    ]
