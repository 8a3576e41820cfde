"""The course machinery around the engine: lab loader, grader, lab-contract checks, GPU fixtures.

``mini_vllm`` is the engine and imports nothing from here; this package imports the engine
where it needs it. ``python -m course.grade`` is the learner's progress table.
"""
