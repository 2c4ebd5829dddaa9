from modelbundle.cli import main

main()
