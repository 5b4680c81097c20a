from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from uuid import uuid4
from tortoise import fields

class Migration(migrations.Migration):
    initial = True

    operations = [
        ops.CreateModel(
            name='LoginThrottle',
            fields=[
                ('key', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=80)),
                ('window_start', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('failures', fields.IntField(default=0)),
            ],
            options={'table': 'login_throttle', 'app': 'models', 'pk_attr': 'key', 'table_description': 'Failed-login counters per key (a blind-indexed email or a client address), per window.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Member',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('email_index', fields.CharField(unique=True, max_length=64)),
                ('email_sealed', fields.BinaryField()),
                ('handle_sealed', fields.BinaryField()),
                ('password_hash', fields.CharField(max_length=255)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('password_changed_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'member', 'app': 'models', 'pk_attr': 'id', 'table_description': 'A person who signed up. Email and handle are sealed, and login finds them by blind index.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='MemberKey',
            fields=[
                ('member_id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('kek_id', fields.CharField(db_index=True, max_length=64)),
                ('wrapped', fields.BinaryField()),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('rotated_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'vault_member_key', 'app': 'models', 'pk_attr': 'member_id', 'table_description': "A member's 256-bit data key, wrapped (AES-GCM) by the key-encryption key `kek_id`."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='WebSession',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('token_hash', fields.CharField(unique=True, max_length=64)),
                ('member', fields.ForeignKeyField('models.Member', source_field='member_id', db_constraint=True, to_field='id', related_name='sessions', on_delete=OnDelete.CASCADE)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('last_seen_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('expires_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('reauthenticated_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('device_sealed', fields.BinaryField(null=True)),
            ],
            options={'table': 'web_session', 'app': 'models', 'pk_attr': 'id', 'table_description': "A logged-in browser. Only a hash of the cookie's token is stored."},
            bases=['Model'],
        ),
    ]
