from tortoise import migrations
from tortoise.migrations import operations as ops
from uuid import uuid4
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0012_governance_statistics')]

    initial = False

    operations = [
        ops.CreateModel(
            name='ScorerRunCounts',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('scorer', fields.CharField(max_length=40)),
                ('hour', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('kind', fields.CharField(default='', max_length=40)),
                ('shard', fields.IntField(default=0)),
                ('runs', fields.IntField(default=0)),
                ('failures', fields.IntField(default=0)),
                ('last_failure_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('last_failure', fields.CharField(default='', max_length=300)),
                ('last_failure_version', fields.CharField(default='', max_length=64)),
            ],
            options={'table': 'scorer_run_counts', 'app': 'models', 'unique_together': (('scorer', 'hour', 'kind', 'shard'),), 'indexes': [Index(fields=['hour'])], 'pk_attr': 'id', 'table_description': 'How one scorer\'s runs went in one hour, with no member data. The row of `kind` ""'},
            bases=['Model'],
        ),
        # The last week's counts move over, each as the only session's rows (shard 0).
        ops.RunSQL(
            'INSERT INTO scorer_run_counts (id, scorer, hour, kind, shard, runs, failures, '
            'last_failure_at, last_failure, last_failure_version) '
            'SELECT id, scorer, hour, kind, 0, runs, failures, last_failure_at, last_failure, '
            'last_failure_version FROM scorer_runs'
        ),
        ops.DeleteModel(name='ScorerRuns'),
    ]
