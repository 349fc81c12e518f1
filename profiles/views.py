"""Browser page for editing my profile."""

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render

from core.http import AuthenticatedHttpRequest

from . import selectors, services
from .choices import REGION_CHOICES

SAVED = "Saved."


class ProfileForm(forms.Form):
    display_name = forms.CharField(max_length=60)
    language = forms.CharField(max_length=2, help_text="ISO 639-1 code, e.g. en, pt, ja.")
    region = forms.ChoiceField(choices=[("", "—"), *REGION_CHOICES], required=False)
    interests = forms.CharField(required=False, widget=forms.TextInput)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The bounds the server enforces, for the page's script to enforce while typing
        # (static/js/ui/profile.js), and said in the help text for the plain field.
        most, longest = (
            settings.LIMITS["INTERESTS_PER_USER"],
            settings.LIMITS["INTEREST_MAX_LENGTH"],
        )
        field = self.fields["interests"]
        field.help_text = f"Comma-separated, at most {most}, each at most {longest} characters."
        field.widget.attrs.update({"data-max-count": most, "data-max-length": longest})


@login_required
def profile_edit(request: AuthenticatedHttpRequest) -> HttpResponse:
    profile = selectors.profile_get(user_id=request.user.pk)
    assert profile is not None  # a signed-in user is an active one
    public = selectors.profile_public(profile=profile)
    initial = {**public, "interests": ", ".join(public["interests"])}
    form = ProfileForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        texts = [t for t in data["interests"].split(",") if t.strip()]
        try:
            services.profile_update(
                user=request.user,
                display_name=data["display_name"],
                language=data["language"],
                region=data["region"],
                interests=texts,
            )
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            # Shown once, on the page the redirect lands on (templates/profiles/edit.html).
            messages.success(request, SAVED)
            return redirect("profile-edit")
    return render(request, "profiles/edit.html", {"form": form})
