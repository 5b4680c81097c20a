from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0001_initial')]

    initial = False

    operations = [
        ops.AddIndex(
            model_name='AccessLogEntry',
            index=Index(fields=['grant_id']),
        ),
        ops.AddIndex(
            model_name='AccessLogEntry',
            index=Index(fields=['at']),
        ),
        ops.AddIndex(
            model_name='App',
            index=Index(fields=['owner_id']),
        ),
        ops.AddIndex(
            model_name='AuthorizationCode',
            index=Index(fields=['grant_id']),
        ),
        ops.AddIndex(
            model_name='AuthorizationCode',
            index=Index(fields=['expires_at']),
        ),
        ops.AddIndex(
            model_name='DeletionLedger',
            index=Index(fields=['state']),
        ),
        ops.AddIndex(
            model_name='ExportLink',
            index=Index(fields=['member_id']),
        ),
        ops.AddIndex(
            model_name='ExportLink',
            index=Index(fields=['expires_at']),
        ),
        ops.AddIndex(
            model_name='Grant',
            index=Index(fields=['app_id']),
        ),
        ops.AddIndex(
            model_name='Grant',
            index=Index(fields=['expires_at']),
        ),
        ops.AddIndex(
            model_name='GrantEvent',
            index=Index(fields=['grant_id', 'at']),
        ),
        ops.AddIndex(
            model_name='LoginThrottle',
            index=Index(fields=['window_start']),
        ),
        ops.AddIndex(
            model_name='MastodonAppRegistration',
            index=Index(fields=['member_id']),
        ),
        ops.AddIndex(
            model_name='OAuthToken',
            index=Index(fields=['grant_id']),
        ),
        ops.AddIndex(
            model_name='OAuthToken',
            index=Index(fields=['revoked_at']),
        ),
        ops.AddIndex(
            model_name='OAuthToken',
            index=Index(fields=['access_expires_at']),
        ),
        ops.AddIndex(
            model_name='OAuthToken',
            index=Index(fields=['refresh_used_at']),
        ),
        ops.AddIndex(
            model_name='PersonalToken',
            index=Index(fields=['member_id']),
        ),
        ops.AddIndex(
            model_name='WebSession',
            index=Index(fields=['member_id']),
        ),
        ops.AddIndex(
            model_name='WebSession',
            index=Index(fields=['expires_at']),
        ),
        ops.AddIndex(
            model_name='WebSession',
            index=Index(fields=['last_seen_at']),
        ),
        ops.AddIndex(
            model_name='WebhookDelivery',
            index=Index(fields=['ledger_id']),
        ),
    ]
