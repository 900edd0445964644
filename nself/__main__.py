from nself.entry import main

main()
