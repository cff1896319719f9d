"""HTML pages of accounts: log in, register, log out."""

from django.conf import settings
from django.contrib.auth import login
from django.contrib.auth.views import LoginView, LogoutView
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from .forms import RegistrationForm
from .ratelimits import LOGIN_GROUP, REGISTER_GROUP, rate_limited


def too_many(request, heading: str, retry_after: int):
    """429 page for a form posted past its rate limit (the API answers `rate_limited`)."""
    notice = "Too many attempts from this address. Try again later."
    context = {"heading": heading, "notice": notice}
    response = render(request, "accounts/locked_out.html", context, status=429)
    response["Retry-After"] = str(retry_after)
    return response


class ChatLoginView(LoginView):
    template_name = "accounts/login.html"
    redirect_authenticated_user = True
    extra_context = {"registration_open": settings.REGISTRATION_OPEN}

    def post(self, request, *args, **kwargs):
        """LOGIN_RATE per client address, counted with the API's logins."""
        retry_after = rate_limited(request, LOGIN_GROUP, key="ip", setting="LOGIN_RATE")
        if retry_after is not None:
            return too_many(request, "Too many logins", retry_after)
        return super().post(request, *args, **kwargs)


class ChatLogoutView(LogoutView):
    pass


@require_http_methods(["GET", "POST"])
def register(request):
    """Register and log in; a closed registration shows a notice instead of the form."""
    if not settings.REGISTRATION_OPEN:
        return render(request, "accounts/register.html", {"closed": True}, status=403)
    if request.method == "POST":  # REGISTER_RATE per address, counted with the API's
        retry_after = rate_limited(request, REGISTER_GROUP, key="ip", setting="REGISTER_RATE")
        if retry_after is not None:
            return too_many(request, "Too many registrations", retry_after)
    form = RegistrationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        if user is not None:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            return redirect(settings.LOGIN_REDIRECT_URL)
    return render(request, "accounts/register.html", {"form": form})
