"""The console's diff renderer (codetether/api/console/diffview.py): files, hunks, line numbers,
statuses, escaping and the page's limits."""

from __future__ import annotations

from markupsafe import escape

from codetether.api.console.diffview import parse_patch, render_patch

PATCH = """\
diff --git a/app.py b/app.py
index e68ed33..a6b46fd 100644
--- a/app.py
+++ b/app.py
@@ -1,5 +1,5 @@ def greet():
 def greet():
-    return "hello"
+    return "hello, <world>"
 
 
 x = \"\"\"multi
diff --git a/gone.txt b/gone.txt
deleted file mode 100644
index 422c2b7..0000000
--- a/gone.txt
+++ /dev/null
@@ -1,2 +0,0 @@
--- a line that starts with two dashes
-b
diff --git a/new.md b/new.md
new file mode 100644
--- /dev/null
+++ b/new.md
@@ -0,0 +1 @@
+<script>alert(1)</script> & more
\\ No newline at end of file
diff --git a/old name.txt b/new name.txt
similarity index 100%
rename from old name.txt
rename to new name.txt
diff --git a/logo.png b/logo.png
Binary files a/logo.png and b/logo.png differ
"""


def test_files_statuses_and_line_numbers():
    view = parse_patch(PATCH)
    assert [(f.path, f.status) for f in view.files] == [
        ("app.py", "modified"), ("gone.txt", "deleted"), ("new.md", "added"),
        ("new name.txt", "renamed"), ("logo.png", "modified"),
    ]
    app, gone, new, renamed, logo = view.files
    assert (app.additions, app.deletions) == (1, 1)
    lines = app.hunks[0].lines
    assert [(line.kind, line.old, line.new) for line in lines] == [
        ("ctx", 1, 1), ("del", 2, None), ("add", None, 2), ("ctx", 3, 3), ("ctx", 4, 4), ("ctx", 5, 5),
    ]
    # Inside a hunk, "--- ..." is a removed line, not the next file's header.
    assert [line.text for line in gone.hunks[0].lines] == ["-- a line that starts with two dashes", "b"]
    assert [line.kind for line in new.hunks[0].lines] == ["add", "note"]
    assert renamed.old_path == "old name.txt" and not renamed.hunks
    assert logo.binary and not view.truncated


def test_highlighted_and_escaped():
    view = render_patch(PATCH.encode())
    app = view.files[0]
    added = app.hunks[0].lines[2]
    assert '<span class="k">return</span>' in added.html
    assert "&lt;world&gt;" in added.html and "<world>" not in added.html
    # The old side is coloured as its own excerpt: the removed line keeps its string colour.
    assert '<span class="s2">' in app.hunks[0].lines[1].html
    new_md = view.files[2].hunks[0].lines[0].html
    assert "<script>" not in new_md and "&lt;script&gt;" in new_md and "&amp;" in new_md


def test_a_long_patch_is_cut_and_says_so():
    body = "".join(f"+line {i}\n" for i in range(50))
    view = parse_patch(f"--- /dev/null\n+++ b/big.txt\n@@ -0,0 +1,50 @@\n{body}", max_lines=10)
    assert view.truncated and len(view.files[0].hunks[0].lines) == 10
    assert view.files[0].status == "added" and view.files[0].path == "big.txt"


def test_not_utf8_and_very_long_lines_still_render():
    long_line = "x = '" + "a" * 5000 + "'"
    view = render_patch(b"--- a/f.py\n+++ b/f.py\n@@ -1 +1 @@\n-\xff\xfe\n+" + long_line.encode() + b"\n")
    old, new = view.files[0].hunks[0].lines
    assert "\ufffd" in old.html
    assert new.html == escape(long_line) and "<span" not in new.html  # too long to colour: escaped text
