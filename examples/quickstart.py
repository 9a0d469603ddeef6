"""Classify a few tasks on the embedded default: no API key, no network.

    python examples/quickstart.py
"""

from dmr import Router

TASKS = [
    "Hi!",
    "What is 2+2?",
    "Translate 'see you tomorrow' into French.",
    "Write a Python function to merge two sorted lists.",
    "Summarize the attached meeting notes in three bullet points.",
    "Design a CQRS architecture for an order system with event sourcing, and explain the trade-offs.",
    "Prove that the halting problem is undecidable, rigorously, step by step.",
    "Diseña una arquitectura distribuida tolerante a fallos para pagos en tiempo real.",
]


def main() -> None:
    router = Router()
    print(f"{'tier':<7} {'model':<26} {'task type':<14} {'complexity':<10} {'conf':>5}  task")
    for task in TASKS:
        d = router.classify(task)
        model = d.model_name or "-"
        print(f"{d.tier.value:<7} {model:<26} {d.task_type.value:<14} {d.complexity.value:<10} "
              f"{d.confidence:>5.2f}  {task[:60]}")


if __name__ == "__main__":
    main()
