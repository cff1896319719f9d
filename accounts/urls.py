from django.urls import path

from . import views

urlpatterns = [
    path("login/", views.ChatLoginView.as_view(), name="login"),
    path("logout/", views.ChatLogoutView.as_view(), name="logout"),
    path("register/", views.register, name="register"),
]
