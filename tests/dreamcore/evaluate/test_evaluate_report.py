"""The HTML report page: rendered from the package template, user text escaped, pictures embedded."""

from __future__ import annotations

import base64

from dreamcore.evaluate.report import html_report
from dreamcore.storage import ArtifactStore


def test_html_report_escapes_user_text_and_embeds_pictures(tmp_path) -> None:
    store = ArtifactStore(str(tmp_path))
    store.write_bytes("evaluate/k/grid.png", b"\x89PNG fake bytes")
    prompt = 'a photo of <script>alert("sks")</script> & co'
    blocks = [("h1", "Dreambooth run report"), ("p", f"Prompt: {prompt}"),
              ("table", [{"key": "validation_prompt", "value": prompt}, {"key": "seed", "value": None}]),
              ("table", []), ("image", "evaluate/k/grid.png")]
    page = html_report(blocks, store)
    assert "<script>" not in page and "&lt;script&gt;alert(&#34;sks&#34;)&lt;/script&gt; &amp; co" in page
    assert "<h1>Dreambooth run report</h1>" in page
    assert "<tr><th>key</th><th>value</th></tr>" in page and "<td>seed</td><td></td>" in page
    data = base64.b64encode(b"\x89PNG fake bytes").decode("ascii")
    assert f'<img alt="grid.png" src="data:image/png;base64,{data}">' in page
    assert page.startswith("<!doctype html>") and page.count("<table>") == 1
