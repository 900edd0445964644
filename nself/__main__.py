from nself.cli import main

main()
