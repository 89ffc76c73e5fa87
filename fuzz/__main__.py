from fuzz.run import main

raise SystemExit(main())
