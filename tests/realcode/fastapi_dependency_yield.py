# Source: fastapi/fastapi, docs_src/dependencies/tutorial008_an_py310.py
#   ("Dependencies with yield": sub-dependencies that each create a
#   resource, yield it inside try/finally, and close it on the way out,
#   passing the outer resource to the inner close when it accepts it).
# Rewritten in the same shape, not copied. Adapted: one dependency is
# decorated, as a user wanting a durable resource setup would try; the
# resources are deterministic fakes whose close is a recorded step; `use`
# drives it the way FastAPI does (next value, then close).
# Constructs: an async generator (yield inside try/finally) decorated.
import resumable
from resumable.testing import step


class Resource:
    def __init__(self, name: str) -> None:
        self.name = name

    async def close(self, outer: "Resource | None" = None) -> None:
        await step("close", self.name, outer.name if outer else None)


@resumable.function
async def dependency_b(dep_a: Resource):
    dep_b = Resource("b")
    await step("open", dep_b.name)
    try:
        yield dep_b
    finally:
        try:
            await dep_b.close(dep_a)
        except TypeError:
            await dep_b.close()


ARGS = {"dependency_b": [((Resource("a"),), {})]}
