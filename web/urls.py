from django.urls import path

from . import api, views

urlpatterns = [
    path("", views.home, name="home"),
    path("c/<int:conversation_id>", views.chat, name="chat-conversation"),
    path("meet/", views.meet, name="meet"),
    path("live/", views.live, name="live"),
    path("api/users", api.UserSearchView.as_view(), name="api-users"),
]
