from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0003_app_terms')]

    initial = False

    operations = [
        ops.CreateModel(
            name='ReceiptKey',
            fields=[
                ('generation', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('kid', fields.CharField(unique=True, max_length=64)),
                ('public_key', fields.CharField(max_length=64)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('retired_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'receipt_key', 'app': 'models', 'pk_attr': 'generation', 'table_description': 'A published consent-receipt signing key: its generation and public half only (the'},
            bases=['Model'],
        ),
    ]
