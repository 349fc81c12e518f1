from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from accounts import api as accounts_api
from conversations import api as conversations_api
from core.throttles import throttled
from matching import api as matching_api
from notifications import api as notifications_api
from notifications import views as notifications_views
from ops import views as ops_views
from presence import api as presence_api
from profiles import api as profiles_api
from profiles import views as profiles_views

api = [
    path("auth/signup", accounts_api.SignupView.as_view(), name="api-signup"),
    path("auth/token", accounts_api.TokenView.as_view(), name="api-token"),
    path("auth/session", accounts_api.SessionView.as_view(), name="api-session"),
    path("auth/ws-ticket", accounts_api.WsTicketView.as_view(), name="api-ws-ticket"),
    path("profile", profiles_api.ProfileMeView.as_view(), name="api-profile-me"),
    # last_seen in it for contacts only: presence's twin of profiles' view (presence/api.py).
    path(
        "users/<int:user_id>/profile",
        presence_api.PublicProfileView.as_view(),
        name="api-profile-public",
    ),
    path("interests", profiles_api.InterestListView.as_view(), name="api-interests"),
    *conversations_api.urlpatterns,
    *matching_api.urlpatterns,
    *presence_api.urlpatterns,
    *notifications_api.urlpatterns,
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-redoc"),
]

urlpatterns = [
    path("", include("web.urls")),
    path("accounts/", include("accounts.urls")),
    path("profile/", profiles_views.profile_edit, name="profile-edit"),
    path("sw.js", notifications_views.service_worker, name="service-worker"),
    path(
        "notifications/unsubscribe/<str:token>",
        notifications_views.unsubscribe,
        name="notifications-unsubscribe",
    ),
    path("api/", include(api)),
    # The admin's log-in, throttled like every log-in (django-axes also locks it out).
    path("admin/login/", throttled("login")(admin.site.login)),
    path("admin/", admin.site.urls),
    path("healthz", ops_views.healthz, name="healthz"),
    path("readyz", ops_views.readyz, name="readyz"),
    path("ops/stats", ops_views.OpsStatsView.as_view(), name="ops-stats"),
    path("metrics", ops_views.metrics, name="metrics"),
]

# JSON for errors raised outside a DRF view under /api/, and for paths no route matches
# there (core/api.py).
handler404 = "core.api.page_not_found"
handler500 = "core.api.server_error"
