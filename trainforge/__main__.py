from trainforge.cli import run

run()
