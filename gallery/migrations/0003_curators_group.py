"""The curators group, with the permissions the admin site needs for their work."""

from django.db import migrations

PERMISSIONS = [
    ("gallery", "change_painting"),
    ("gallery", "view_painting"),
    ("gallery", "add_labelchange"),
    ("gallery", "view_labelchange"),
    ("gallery", "view_duplicatepair"),
    ("gallery", "change_duplicatepair"),
    ("gallery", "add_datasetversion"),
    ("gallery", "view_datasetversion"),
    ("gallery", "add_datasetexport"),
    ("gallery", "view_datasetexport"),
]


def create_group(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.get_or_create(name="curators")
    for app_label, codename in PERMISSIONS:
        perm = Permission.objects.filter(content_type__app_label=app_label, codename=codename).first()
        if perm:
            group.permissions.add(perm)


class Migration(migrations.Migration):
    dependencies = [
        ("gallery", "0002_painting_dhash_painting_group_and_more"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_group, migrations.RunPython.noop)]
