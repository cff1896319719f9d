"""HTML pages of accounts: log in, register, log out."""

from django.conf import settings
from django.contrib.auth import login
from django.contrib.auth.views import LoginView, LogoutView
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from .forms import RegistrationForm


class ChatLoginView(LoginView):
    template_name = "accounts/login.html"
    redirect_authenticated_user = True
    extra_context = {"registration_open": settings.REGISTRATION_OPEN}


class ChatLogoutView(LogoutView):
    pass


@require_http_methods(["GET", "POST"])
def register(request):
    """Register and log in; a closed registration shows a notice instead of the form."""
    if not settings.REGISTRATION_OPEN:
        return render(request, "accounts/register.html", {"closed": True}, status=403)
    form = RegistrationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        if user is not None:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            return redirect(settings.LOGIN_REDIRECT_URL)
    return render(request, "accounts/register.html", {"form": form})
