from fd_sync.cli import main

main()
