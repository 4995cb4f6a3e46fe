# Source: restatedev/examples,
#   python/end-to-end-applications/rag-ingestion/src/rag/pdf_workflow.py
#   (pdf workflow: a nested async function reading the request downloads the
#   PDF as a durable step; the text is split; one embedding call per snippet
#   is started and collected with `[await vector for vector in futures]`;
#   another nested async function stores the vectors).
# Rewritten in the same shape, not copied. Adapted: the workflow is a
# decorated module-level function; `ctx` and its futures are the fakes of
# tests/realcode/_restate.py; the object store, the PDF parser, the
# embedding service and the vector store are deterministic fakes (the
# "PDF" is UTF-8 text split on blank lines).
# Constructs: nested async functions reading the function's locals (closures)
# passed as step actions, a list comprehension of futures, a list
# comprehension whose element awaits, bytes held across an await.
import resumable
from tests.realcode._restate import Context

OBJECTS = {("docs", "guide.pdf"): b"Restate is durable.\n\nIt journals steps.\n\nIt retries."}


class ObjectStore:
    async def aget_object(self, bucket: str, name: str) -> bytes:
        return OBJECTS[(bucket, name)]


class VectorStore:
    async def aupsert(self, texts: list[str], vectors: list[list[int]], metadata: dict) -> None:
        return None


def get_object_store_client() -> ObjectStore:
    return ObjectStore()


def get_vector_store() -> VectorStore:
    return VectorStore()


def extract_pdf_text_snippets(pdf_bytes: bytes) -> list[str]:
    return [part.strip() for part in pdf_bytes.decode().split("\n\n")]


def compute_embedding(text: str) -> list[int]:
    return [len(text), sum(map(ord, text)) % 1000]


@resumable.function
async def process_pdf(ctx: Context, request: dict):
    # 1. Download the PDF.
    async def download_pdf() -> bytes:
        object_store = get_object_store_client()
        return await object_store.aget_object(request["bucket_name"], request["object_name"])

    pdf_bytes = await ctx.run_typed("Download PDF", download_pdf)

    # 2. Extract the text snippets.
    texts = extract_pdf_text_snippets(pdf_bytes)

    # 3. One embedding per snippet.
    vector_futures = [ctx.run_typed("embed", compute_embedding, text=text) for text in texts]
    vectors = [await vector for vector in vector_futures]

    # 4. Store them.
    async def add_documents():
        metadata = {
            "object_name": request["object_name"],
            "bucket_name": request["bucket_name"],
        }
        store = get_vector_store()
        await store.aupsert(texts, vectors, metadata)

    await ctx.run_typed("Add documents", add_documents)
    return "ok"


ARGS = {
    "process_pdf": [((Context("pdf-1"), {"bucket_name": "docs", "object_name": "guide.pdf"}), {})],
}
