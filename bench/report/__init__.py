"""Reports computed from stored result files only (read and validated by bench.results): the ranked model
(model), its renderers (text, markdown, html, terminal, render), the committed tables (committed) and
every figure (figures). ``python -m bench.report`` regenerates the committed tables in leaderboard/."""
