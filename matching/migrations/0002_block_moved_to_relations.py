from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("matching", "0001_initial"),
        ("relations", "0002_blocks_from_matching"),
    ]

    operations = [migrations.DeleteModel(name="Block")]
