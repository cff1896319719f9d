"""People using a running dev stack, for tests, benchmarks and screenshot scripts alike
(``scripts.devstack`` starts the stack; this drives it as its users do):

* ``live``: users of the Python client over the network (register, identity, certified
  devices, sealed messages, groups);
* ``browser``: ``ChatUser``, one person in one browser context of the app (Playwright);
* ``seeding``: history written from Python for a browser user to find;
* ``photos``: a JPEG that looks like a photo, to attach;
* ``attachments``: attach files in the browser app, the id of an upload, a stored blob
  changed on disk;
* ``axe``: axe-core's serious and critical violations on a screen, light and dark.

Import the module you need (``from scripts.people.browser import ChatUser``): only
``browser``, ``attachments`` and ``axe`` need Playwright and only ``photos`` needs
Pillow.
"""
