from django.contrib import admin

from gallery.models import Painting


@admin.register(Painting)
class PaintingAdmin(admin.ModelAdmin):
    list_display = ("id", "title", "artist", "label", "split", "created")
    list_filter = ("label", "split", "source")
    search_fields = ("title", "artist", "sha256")
    readonly_fields = ("sha256", "width", "height", "format", "created")
