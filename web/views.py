"""The browser app: conversations, Meet and Live pages (their scripts live in static/js/)."""

from typing import cast

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from core.http import AuthenticatedHttpRequest

from . import selectors


def home(request: HttpRequest) -> HttpResponse:
    """Signed in: the conversations app; otherwise the welcome page."""
    if request.user.is_authenticated:
        return chat(cast(AuthenticatedHttpRequest, request))
    return render(request, "home.html")


@login_required
def chat(request: AuthenticatedHttpRequest, conversation_id: int | None = None) -> HttpResponse:
    context = selectors.page_context(user=request.user)
    context["conversation_id"] = conversation_id
    return render(request, "web/chat.html", {"page": context, "nav": "chat"})


@login_required
def meet(request: AuthenticatedHttpRequest) -> HttpResponse:
    context = selectors.page_context(user=request.user)
    return render(request, "web/meet.html", {"page": context, "nav": "meet"})


@login_required
def live(request: AuthenticatedHttpRequest) -> HttpResponse:
    context = selectors.page_context(user=request.user)
    return render(request, "web/live.html", {"page": context, "nav": "live"})
