"""The verification report a reviewer prints and files (issue 14): ``html.render_html`` turns the report dict into
one self-contained HTML page, ``html.verdict_line`` into the one sentence that heads it."""
