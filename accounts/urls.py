from django.contrib.auth import views as auth_views
from django.urls import path

from core.throttles import throttled

from . import views
from .forms import LoginForm

login_page = auth_views.LoginView.as_view(
    template_name="accounts/login.html", authentication_form=LoginForm
)

urlpatterns = [
    path("signup/", throttled("signup")(views.signup), name="signup"),
    # Throttled per address (POSTs); django-axes also locks out an account and address.
    path("login/", throttled("login")(login_page), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
]
