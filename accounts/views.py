"""Browser pages for accounts: sign up (log in and out use Django's own views)."""

from django import forms
from django.contrib.auth import login
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from . import services


class SignupForm(forms.Form):
    username = forms.CharField(max_length=150, help_text=services.USERNAME_HELP)
    email = forms.EmailField(required=False)
    password = forms.CharField(widget=forms.PasswordInput, max_length=4096, strip=False)


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = services.user_signup(**form.cleaned_data)
        except ValidationError as exc:
            for field, messages in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, messages)
        else:
            # django-stubs wants the configured user model, not AbstractBaseUser.
            login(
                request,
                user,  # type: ignore[arg-type]
                backend="django.contrib.auth.backends.ModelBackend",
            )
            return redirect("profile-edit")
    return render(request, "accounts/signup.html", {"form": form})
