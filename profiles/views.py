"""Browser page for editing my profile."""

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render

from core.http import AuthenticatedHttpRequest

from . import selectors, services
from .choices import REGION_CHOICES


class ProfileForm(forms.Form):
    display_name = forms.CharField(max_length=60)
    language = forms.CharField(max_length=2, help_text="ISO 639-1 code, e.g. en, pt, ja.")
    region = forms.ChoiceField(choices=[("", "—"), *REGION_CHOICES], required=False)
    interests = forms.CharField(
        required=False, help_text="Comma-separated, at most 20.", widget=forms.TextInput
    )


@login_required
def profile_edit(request: AuthenticatedHttpRequest) -> HttpResponse:
    profile = selectors.profile_get(user_id=request.user.pk)
    assert profile is not None  # a signed-in user is an active one
    public = selectors.profile_public(profile=profile)
    initial = {**public, "interests": ", ".join(public["interests"])}
    form = ProfileForm(request.POST or None, initial=initial)
    saved = False
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
            for field, messages in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, messages)
        else:
            return redirect("profile-edit")
    return render(request, "profiles/edit.html", {"form": form, "saved": saved})
