from invoke import task

@task
def x(c)
    pass
