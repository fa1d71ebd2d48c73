from gridmgr.cli import main

main()
