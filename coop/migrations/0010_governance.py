from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise.fields.base import OnDelete
from uuid import uuid4
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0009_scorer_runs')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Approval',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('scorer', fields.CharField(max_length=40)),
                ('version', fields.CharField(max_length=64)),
                ('source', fields.CharField(max_length=16)),
                ('reads', fields.CharField(default='', max_length=200)),
                ('needs_text', fields.BooleanField(default=False)),
                ('proposal_id', fields.UUIDField(null=True)),
                ('approved_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('retired_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'governance_approval', 'app': 'models', 'unique_together': (('scorer', 'version'),), 'pk_attr': 'id', 'table_description': 'A scorer version the cooperative offers: approved by a vote, or already installed'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='GovernanceState',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('baseline_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'governance_state', 'app': 'models', 'pk_attr': 'id', 'table_description': 'One row: when governance was first switched on (the baseline was recorded then).'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Proposal',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('kind', fields.CharField(max_length=16)),
                ('scorer', fields.CharField(max_length=40)),
                ('version', fields.CharField(max_length=64)),
                ('previous_version', fields.CharField(default='', max_length=64)),
                ('title', fields.CharField(default='', max_length=200)),
                ('description', fields.TextField(default='', unique=False)),
                ('homepage', fields.CharField(default='', max_length=500)),
                ('reads', fields.CharField(default='', max_length=200)),
                ('needs_text', fields.BooleanField(default=False)),
                ('distribution_hash', fields.CharField(default='', max_length=64)),
                ('changes', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('opened_by', fields.CharField(max_length=16)),
                ('opened_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('closes_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('rules', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('state', fields.CharField(default='open', max_length=8)),
                ('closed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('outcome', fields.CharField(default='', max_length=16)),
                ('yes', fields.IntField(default=0)),
                ('no', fields.IntField(default=0)),
                ('abstain', fields.IntField(default=0)),
                ('eligible', fields.IntField(default=0)),
            ],
            options={'table': 'governance_proposal', 'app': 'models', 'indexes': [Index(fields=['scorer', 'version']), Index(fields=['state', 'closes_at'])], 'pk_attr': 'id', 'table_description': 'One question put to the members: offer a scorer (version), or retire a scorer.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Ballot',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('proposal', fields.ForeignKeyField('models.Proposal', source_field='proposal_id', db_constraint=True, to_field='id', related_name='ballots', on_delete=OnDelete.CASCADE)),
                ('choice', fields.CharField(max_length=8)),
            ],
            options={'table': 'governance_ballot', 'app': 'models', 'indexes': [Index(fields=['proposal_id', 'choice'])], 'pk_attr': 'id', 'table_description': 'One vote: a random id and the choice. Nothing here points at a member, and there is'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='RollEntry',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('proposal', fields.ForeignKeyField('models.Proposal', source_field='proposal_id', db_constraint=True, to_field='id', related_name='roll', on_delete=OnDelete.CASCADE)),
                ('voter_key', fields.CharField(max_length=64)),
                ('ballot_sealed', fields.BinaryField(null=True)),
            ],
            options={'table': 'governance_roll', 'app': 'models', 'unique_together': (('proposal_id', 'voter_key'),), 'pk_attr': 'id', 'table_description': "A member on a proposal's eligibility roll: a keyed hash of their id (no member link in"},
            bases=['Model'],
        ),
    ]
