"""Seed 000, "Capturing Status Updates": a StatusTracker that keeps the usual
status on the backend and also persists every status to PostgreSQL through
SQLAlchemy. It is a drop-in replacement: workers only call ``set``.

Run it:  python examples/custom_status_tracker.py
(PostgreSQL from ALSEK_EXAMPLE_POSTGRES_URL, default postgres@127.0.0.1:5432).
Changed from the seed only where SQLAlchemy 2 requires it: ``session.get``
instead of the removed ``Query.get``, and a string UUID column.
"""

from __future__ import annotations

import os

from sqlalchemy import Column, String, create_engine
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import declarative_base, sessionmaker

from alsek.core.message import Message
from alsek.core.status import StatusTracker, TaskStatus

Base = declarative_base()

engine = create_engine(
    os.environ.get("ALSEK_EXAMPLE_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
)
Session = sessionmaker(bind=engine)
session = Session()


class Status(Base):  # type: ignore[misc, valid-type]
    __tablename__ = "status"

    id = Column(UUID(as_uuid=False), primary_key=True)
    status = Column(String)

    def __repr__(self) -> str:
        return f"<Status(id='{self.id}', status='{self.status}')>"


class CustomStatusTracker(StatusTracker):
    def set(self, message: Message, status: TaskStatus) -> None:
        super().set(message, status=status)

        if status == TaskStatus.SUBMITTED:
            session.add(Status(id=message.uuid, status=status.name))
        else:
            record = session.get(Status, message.uuid)
            record.status = status.name
        session.commit()


if __name__ == "__main__":
    from alsek import Broker, task
    from alsek_core.config import default_backend
    from alsek_core.testing.runner import run_until_empty

    Base.metadata.create_all(engine)
    backend = default_backend()
    status_tracker = CustomStatusTracker(backend)

    @task(Broker(backend), status_tracker=status_tracker)
    def sum_n(n: int) -> int:
        return n * (n + 1) // 2

    message = sum_n.generate(kwargs={"n": 100})
    run_until_empty([sum_n])
    print(session.get(Status, message.uuid))
