"""Screenshots of the staff admin pages lane ops changed (issue 16), at 1280 and 390 px,
into var/screenshots/ops/: the user list (online now, last seen, storage), a user's page
(devices with fingerprints and revoke buttons), device search by a displayed fingerprint,
the audit log and the live connections.

usage: PYTHONPATH=. python scripts/ops_admin_screenshots.py
"""

from pathlib import Path

from playwright.sync_api import sync_playwright

from scripts.devstack import DjangoStack

OUT = Path(__file__).resolve().parents[1] / "var" / "screenshots" / "ops"
OUT.mkdir(parents=True, exist_ok=True)
SIZES = ((1280, 900), (390, 844))
SEED = """
import hashlib, os
from datetime import timedelta
from django.utils import timezone
from django.contrib.admin.models import LogEntry, CHANGE
from django.contrib.contenttypes.models import ContentType
from accounts.models import User
from keys.models import Device
from messaging.models import Blob, Connection
root = User.objects.create_superuser("root", password="staff password for shots 1")
now = timezone.now()
for name, devices in (("alice", ["Firefox on the laptop", "Phone", "Old tablet"]), ("bob", ["Desktop"])):
    user = User.objects.create_user(name, password="x" * 20)
    for i, label in enumerate(devices):
        kid = lambda tag: hashlib.sha256(f"{name}{i}{tag}".encode()).hexdigest()
        d = Device.objects.create(user=user, name=label, enc_spki=b"e", sig_spki=b"s",
            enc_kid=kid("e"), sig_kid=kid("s"), proof="p", last_seen=now - timedelta(minutes=7 * i),
            revoked=now if label == "Old tablet" else None)
        if i == 0:
            Connection.objects.create(channel_name=f"specific.{name}", user=user, device=d,
                worker=os.urandom(16).hex(), host="chat-1", port=8001 + len(name) % 2, pid=4100 + i)
    Blob.objects.create(id=hashlib.sha256(name.encode()).hexdigest()[:32],
        uploader=user, size=3 * 2**20 if name == "alice" else 40960)
LogEntry.objects.create(user=root, content_type=ContentType.objects.get_for_model(User),
    object_id=str(User.objects.get(username="bob").pk), object_repr="bob", action_flag=CHANGE,
    change_message="Deactivated by admin action.")
print(Device.objects.filter(user__username="alice").first().sig_kid)
"""


def main() -> None:
    stack = DjangoStack(1, env={"DJANGO_DEBUG": "0"}).start()
    try:
        kid = stack.manage("shell", "-c", SEED).strip().splitlines()[-1]
        alice_page = "/admin/accounts/user/?q=alice"
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"]
            )
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(stack.base_url + "/admin/login/")
            page.fill("#id_username", "root")
            page.fill("#id_password", "staff password for shots 1")
            page.click("input[type=submit]")
            page.goto(stack.base_url + alice_page)
            user_url = page.locator("th.field-username a").first.get_attribute("href")
            displayed = " ".join(kid[i : i + 4] for i in range(0, 8, 4)) + " …"
            shots = {
                "users": "/admin/accounts/user/",
                "user-page": user_url,
                "device-search": "/admin/keys/device/?q=" + displayed.replace(" ", "+"),
                "audit": "/admin/admin/logentry/",
                "connections": "/admin/messaging/connection/",
            }
            variants = [(w, h, scheme) for scheme in ("light", "dark") for w, h in SIZES]
            for name, url in shots.items():
                for width, height, scheme in variants:
                    page.set_viewport_size({"width": width, "height": height})
                    page.emulate_media(color_scheme=scheme)
                    page.goto(stack.base_url + url)
                    suffix = "-dark" if scheme == "dark" else ""
                    path = OUT / f"{name}-{width}{suffix}.png"
                    page.screenshot(path=str(path), full_page=True)
                    wide = page.evaluate(
                        "document.documentElement.scrollWidth > window.innerWidth + 1"
                    )
                    print(f"{path.name}: page wider than the viewport: {wide}")
            browser.close()
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
