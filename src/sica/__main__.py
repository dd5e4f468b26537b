from sica.cli import main

main()
