from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0010_governance')]

    initial = False

    operations = [
        ops.RemoveIndex(
            model_name='AccessLogEntry',
            name=None,
            fields=['grant_id'],
        ),
        ops.AddIndex(
            model_name='AccessLogEntry',
            index=Index(fields=['grant_id', 'at']),
        ),
    ]
