"""axe-core in a Playwright page: the serious and critical violations on a screen, in
light and dark. axe-core comes from npm (tests/browser/package.json, `make node-deps`)
and is injected with add_script_tag (the page's context must bypass its CSP)."""

from __future__ import annotations

from pathlib import Path

AXE = (
    Path(__file__).resolve().parents[2]
    / "tests"
    / "browser"
    / "node_modules"
    / "axe-core"
    / "axe.min.js"
)
IMPACTS = ("serious", "critical")
SCHEMES = ("light", "dark")
COLOUR_RULES = ("color-contrast", "link-in-text-block")


def axe_problems(page) -> list[str]:
    """The serious and critical violations axe finds on the page as shown, in light and
    dark, as readable lines (rule, impact, the first elements); raises FileNotFoundError
    when axe-core is not installed."""
    if not AXE.exists():
        raise FileNotFoundError(f"{AXE} is missing: run `make node-deps` (npm ci in tests/browser)")
    if not page.evaluate("typeof window.axe === 'object'"):
        page.add_script_tag(path=str(AXE))
    found = []
    for scheme in SCHEMES:
        page.emulate_media(color_scheme=scheme, reduced_motion="reduce")
        # only colours differ between the schemes: dark runs the colour rules alone
        options = {"resultTypes": ["violations"]}
        if scheme != SCHEMES[0]:
            options["runOnly"] = {"type": "rule", "values": list(COLOUR_RULES)}
        result = page.evaluate(
            "async (options) => (await axe.run(document, options)).violations"
            ".map((v) => ({id: v.id, impact: v.impact, help: v.help,"
            " targets: v.nodes.slice(0, 3).map((n) => n.target.join(' '))}))",
            options,
        )
        found += [
            f"[{scheme}] {v['id']} ({v['impact']}): {v['help']} at {', '.join(v['targets'])}"
            for v in result
            if v["impact"] in IMPACTS
        ]
    page.emulate_media(color_scheme="light")
    return found


def assert_clean(page, where: str = "") -> None:
    """Fails (AssertionError) when axe finds a serious or critical violation."""
    problems = axe_problems(page)
    assert not problems, f"axe on {where or page.url}:\n" + "\n".join(problems)
