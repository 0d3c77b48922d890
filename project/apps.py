from django.apps import AppConfig


class ProjectConfig(AppConfig):
    """The composition root: the one place that sees every app (the URL conf that mounts them). Nothing imports
    it; the kernel and the apps stay unaware of each other above their layer."""

    name = "project"
    verbose_name = "Project"
