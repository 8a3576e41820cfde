import sys
from course.grade import main

sys.exit(main())
