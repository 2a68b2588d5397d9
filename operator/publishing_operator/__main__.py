from publishing_operator.cli import main

raise SystemExit(main())
