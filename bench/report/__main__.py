from bench.report.committed import main

raise SystemExit(main())
