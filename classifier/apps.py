from django.apps import AppConfig


class ClassifierConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "classifier"
    verbose_name = "Classifier"

    def ready(self) -> None:
        from classifier import signals  # noqa: F401 - connects the file clean-up receivers
