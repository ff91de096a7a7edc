"""Post-mortem in the root actor itself: its own error opens pdb where it
was raised."""
import tractor


async def main():
    answer = None
    return answer.upper()  # AttributeError here


if __name__ == '__main__':
    tractor.run(main, debug_mode=True)
