from cartes.cli.main import run

run()
