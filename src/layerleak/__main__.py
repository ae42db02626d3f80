from layerleak.cli import main

main()
