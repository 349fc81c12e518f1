"""The browser app: conversations, Meet and Live pages (their scripts live in static/js/)."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from . import selectors


def home(request):
    """Signed in: the conversations app; otherwise the welcome page."""
    if request.user.is_authenticated:
        return chat(request)
    return render(request, "home.html")


@login_required
def chat(request, conversation_id: int | None = None):
    context = selectors.page_context(user=request.user)
    context["conversation_id"] = conversation_id
    return render(request, "web/chat.html", {"page": context, "nav": "chat"})


@login_required
def meet(request):
    context = selectors.page_context(user=request.user)
    return render(request, "web/meet.html", {"page": context, "nav": "meet"})


@login_required
def live(request):
    context = selectors.page_context(user=request.user)
    return render(request, "web/live.html", {"page": context, "nav": "live"})
